"""`hindi-lm` under `accelerate launch`, plus a record of the trained model as the ranks hold it in memory.

    accelerate launch --config_file CONFIG tests/distributed_run.py RECORD pretrain --output-dir ... [...]

Runs `training.cli.main` on the remaining arguments. Once the run's `finish` has saved the model, every rank
computes logits on fixed token ids with the in-memory (possibly sharded) model and gathers its full state dict
independently of the save path; rank 0 writes both, with how the model was wrapped, to RECORD (`torch.save`).
tests/test_distributed.py compares that record with the saved folder.

On a machine without GPUs, an FSDP config is made to run FSDP on gloo: accelerate 1.16 turns the FSDP plugin on
only for accelerator devices and silently trains with DDP on CPUs (`AcceleratorState` keeps `MULTI_CPU`), while
torch's `fully_shard` itself runs on CPU with gloo. The shim below only restores that one decision.
"""

import os
import sys

import torch

PROBE_IDS = torch.arange(5, 37).reshape(2, 16)  # fixed token ids below every test vocabulary's size


def run_fsdp_on_cpu() -> None:
    """Let an FSDP plugin take effect on CPU processes (see the module docstring)."""
    from accelerate.state import AcceleratorState, PartialState
    from accelerate.utils import DistributedType

    original = AcceleratorState.__init__

    def __init__(self, *args, fsdp_plugin=None, **kwargs):
        original(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
            self.fsdp_plugin = fsdp_plugin
            # In PartialState too: every later AcceleratorState() copies its distributed type back in.
            self.distributed_type = PartialState._shared_state["distributed_type"] = DistributedType.FSDP

    AcceleratorState.__init__ = __init__


def probe_logits(model) -> dict:
    """Every logits tensor the model returns for `PROBE_IDS` (the hybrid has two: causal and masked)."""
    output = model(input_ids=PROBE_IDS)
    return {name: value for name, value in output.items() if name.endswith("logits")}


def describe_wrapping(trainer) -> dict:
    """How the trained model is held: FSDP version and whether its parameters are really split across ranks."""
    from torch.distributed.tensor import DTensor

    params = list(trainer.model.parameters())
    plugin = trainer.accelerator.state.fsdp_plugin if trainer.is_fsdp_enabled else None
    return {
        "distributed_type": str(trainer.accelerator.distributed_type),
        "fsdp_version": plugin.fsdp_version if plugin else None,
        "state_dict_type": str(plugin.state_dict_type) if plugin else None,
        "dtensor_parameters": sum(isinstance(p, DTensor) for p in params),
        "parameters": len(params),
        "local_numel": sum(p.to_local().numel() if isinstance(p, DTensor) else p.numel() for p in params),
        "numel": sum(p.numel() for p in params),
    }


def record_after_finish(path: str) -> None:
    """Wrap `training.pretrain.finish` so that, after the save, the in-memory model is recorded to `path`."""
    from torch.distributed.tensor import DTensor

    from training import pretrain

    finish = pretrain.finish

    def finish_and_record(run, data, trainer, result, train_seconds):
        metrics = finish(run, data, trainer, result, train_seconds)
        model = trainer.model
        model.eval()
        with torch.no_grad():  # a collective under FSDP: every rank runs the same forward
            logits = probe_logits(model)
        # Gathered tensor by tensor, not through the save path's `get_model_state_dict`, so the two can disagree.
        state = {name: value.full_tensor() if isinstance(value, DTensor) else value
                 for name, value in model.state_dict().items()}
        if run.state.is_main_process:
            torch.save({"logits": logits, "state_dict": state, "wrapping": describe_wrapping(trainer),
                        "world_size": run.state.num_processes}, path)
        run.state.wait_for_everyone()
        return metrics

    pretrain.finish = finish_and_record


def main(argv: list[str]) -> int:
    record, argv = argv[0], argv[1:]
    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true" and not torch.cuda.is_available():
        run_fsdp_on_cpu()
    record_after_finish(record)
    from training.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
