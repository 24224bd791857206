"""ms-swift plugin for tests/test_guard.py: the disk fills while the second checkpoint is saved.

Loaded with `--external_plugins tests/plugins/full_disk.py`. The optimizer state of checkpoint 2 is half
written, then the write fails the way a full disk fails (OSError errno 28), exactly where a real full
disk would stop the save: after the adapter, before trainer_state.json.
"""

import errno
import os

import torch

_save = torch.save


def _save_until_full(obj, f, *args, **kwargs):
    name = str(f)
    if "checkpoint-2" in name and name.endswith("optimizer.pt"):
        with open(name, "wb") as out:
            out.write(b"\0" * 4096)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), name)
    return _save(obj, f, *args, **kwargs)


torch.save = _save_until_full
