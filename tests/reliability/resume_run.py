"""One small training run with checkpoints, shared by the resume fault tests
and the child processes they kill (``python resume_run.py DIR TARGET N``
resumes in DIR and SIGKILLs itself at the N-th call of TARGET)."""
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))

from loop_helpers import MomentumSGD, TinyMLP, digits

from tracejit import train
from tracejit.train import checkpoint, loop


class Crash(Exception):
    pass


def run(directory, resume=False, epochs=2, seed=11, learning_rate=0.05, crash_at=None,
        override=False):
    (x, y), valid = digits(n_train=200, n_test=60)
    callbacks = []
    if crash_at is not None:
        def crash(run, logs):
            if logs["step"] == crash_at:
                raise Crash
        callbacks.append(train.LambdaCallback(on_step_end=crash))
    return train.fit(TinyMLP(), MomentumSGD(learning_rate), (x, y), epochs=epochs, seed=seed,
                     batch_size=25, validation_data=valid, checkpoint_dir=directory,
                     checkpoint_every=3, keep_checkpoints=2, callbacks=callbacks,
                     resume=resume, override=override, verbose=False,
                     metadata={"model": "tiny", "config": {"learning_rate": learning_rate}})


def _kill_at(module, name, nth):
    real = getattr(module, name)
    calls = {"n": 0}

    def killing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    setattr(module, name, killing)


if __name__ == "__main__":
    directory, target, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
    module = {"restore_train_state": loop, "remove_stale_files": loop,
              "save_train_state": loop}.get(target, os)
    if module is os:
        checkpoint.os = type(sys)("os_proxy")
        checkpoint.os.__dict__.update(os.__dict__)
        module = checkpoint.os
    _kill_at(module, target, nth)
    run(directory, resume=True)
