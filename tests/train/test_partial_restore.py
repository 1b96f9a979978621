"""Partial and renamed restores (Hands-On ML Ch. 11: reuse hidden[123] of a
pretrained network, initialize the rest)."""
import numpy as np
import pytest

from tracejit import nn, optim, train
from tracejit.train import CheckpointError, load_checkpoint, restore_train_state
from tracejit.train.checkpoint import select_names


def model(names=("hidden1", "hidden2", "hidden3", "hidden4"), out=5):
    return nn.Sequential([nn.Dense(8, "relu", name=n) for n in names]
                         + [nn.Dense(out, name="outputs")])


@pytest.fixture
def saved(tmp_path):
    state = train.init_train_state(model(), optim.adam(1e-3), (6,), seed=1)
    state = state.replace(step=np.asarray(7, dtype=np.asarray(state.step).dtype))
    path = train.save_train_state(tmp_path, state, metadata={"task": "A"})
    return path, state


def test_restore_hidden_123_only_and_initialize_the_rest(saved):
    path, old = saved
    new_model = model(out=3)                                   # a new output layer
    like = train.init_train_state(new_model, optim.adam(1e-3), (6,), seed=2)
    result = restore_train_state(path, like, include=r"^params/hidden[123]/")
    state, extra, metadata = result                            # still a 3-tuple
    assert metadata == {"task": "A"} and extra == {}
    assert sorted(result.restored) == [f"params/hidden{i}/{v}" for i in (1, 2, 3)
                                       for v in ("bias", "kernel")]
    assert all(k == v for k, v in result.restored.items())
    for i in (1, 2, 3):
        np.testing.assert_array_equal(state.params[f"hidden{i}"]["kernel"],
                                      old.params[f"hidden{i}"]["kernel"])
    for name in ("hidden4", "outputs"):                        # kept like's values
        np.testing.assert_array_equal(state.params[name]["kernel"], like.params[name]["kernel"])
    assert "params/hidden4/kernel" in result.kept and "step" in result.kept
    assert int(state.step) == 0                                # like's step, not 7
    assert type(state.opt_state) is type(like.opt_state)
    # a full restore still works and says it restored everything
    full = restore_train_state(path, train.init_train_state(model(), optim.adam(1e-3), (6,)))
    assert int(full.state.step) == 7 and not full.kept and "step" in full.restored


def test_exclude_and_rename(saved):
    path, old = saved
    renamed_model = model(names=("dense1", "dense2", "dense3", "dense4"))
    like = train.init_train_state(renamed_model, optim.adam(1e-3), (6,), seed=3)
    result = restore_train_state(path, like, include=r"^params/", exclude=r"outputs",
                                 rename={r"^params/hidden(\d)/": r"params/dense\1/"})
    assert result.restored["params/dense2/kernel"] == "params/hidden2/kernel"
    assert len(result.restored) == 8
    np.testing.assert_array_equal(result.state.params["dense4"]["bias"],
                                  old.params["hidden4"]["bias"])
    np.testing.assert_array_equal(result.state.params["outputs"]["kernel"],
                                  like.params["outputs"]["kernel"])


def test_errors_name_the_problem(saved):
    path, _ = saved
    like = train.init_train_state(model(out=3), optim.adam(1e-3), (6,))
    with pytest.raises(CheckpointError, match="params/outputs/kernel: checkpoint entry"):
        restore_train_state(path, like, include=r"^params/outputs/")    # 5 vs 3 classes
    with pytest.raises(CheckpointError, match="select nothing"):
        restore_train_state(path, like, include=r"^params/conv")
    with pytest.raises(CheckpointError, match="not in this model"):
        restore_train_state(path, like, include=r"^params/hidden1/",
                            rename={"hidden1": "hidden9"})
    with pytest.raises(CheckpointError, match="both"):
        restore_train_state(path, like, include=r"^params/hidden[12]/kernel",
                            rename={r"hidden\d": "hidden1"})
    with pytest.raises(CheckpointError, match="regular expression"):
        restore_train_state(path, like, include="(")
    with pytest.raises(CheckpointError, match="does not match"):      # strict without filters
        restore_train_state(path, like)


def test_load_checkpoint_with_the_same_keywords(tmp_path):
    tree = {"params": {"hidden1": {"kernel": np.ones((2, 3), np.float32)},
                       "outputs": {"kernel": np.zeros((3, 4), np.float32)}},
            "step": 5}
    train.save_checkpoint(tmp_path, 5, tree)
    step, alone, _ = loaded = load_checkpoint(tmp_path, include=r"hidden")
    assert step == 5 and loaded.step == 5
    assert list(alone) == ["params"] and list(alone["params"]) == ["hidden1"]
    assert loaded.restored == {"params/hidden1/kernel": "params/hidden1/kernel"}
    like = {"params": {"layer1": {"kernel": np.full((2, 3), 9, np.float32)},
                       "outputs": {"kernel": np.full((3, 2), 9, np.float32)}}}
    _, into, _ = loaded = load_checkpoint(tmp_path, like, include=r"^params/hidden",
                                          rename={"hidden1": "layer1"})
    np.testing.assert_array_equal(into["params"]["layer1"]["kernel"], np.ones((2, 3)))
    np.testing.assert_array_equal(into["params"]["outputs"]["kernel"], np.full((3, 2), 9))
    assert loaded.restored == {"params/layer1/kernel": "params/hidden1/kernel"}
    with pytest.raises(CheckpointError, match="expects"):
        load_checkpoint(tmp_path, like, include=r"outputs")
    full = load_checkpoint(tmp_path)
    assert set(full.restored) == {"params/hidden1/kernel", "params/outputs/kernel", "step"}


def test_select_names():
    names = ["params/hidden1/kernel", "params/hidden2/kernel", "params/outputs/kernel", "step"]
    assert select_names(names) == {n: n for n in names}
    assert select_names(names, include="hidden", exclude="2") == {
        "params/hidden1/kernel": "params/hidden1/kernel"}
    assert select_names(names, include="^step$", rename={"step": "global_step"}) == {
        "global_step": "step"}
