"""IR -> IR transforms: autodiff, simplification, fusion."""
