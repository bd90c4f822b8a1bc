"""What samples while training cost, on the worked example's run: `make demo`'s training (600 clinic notes, SmolLM2-135M-Instruct in 4 bits,
a validation every 12 steps) for its first STEPS steps, with `train.samples` at its default of 3.

Run: `.venv/bin/python bench/samples_cost.py [STEPS]` (default 24: two validations). The run's own clock gives both figures, in one process:
the seconds its samples took at each validation (`samples.jsonl`) and the seconds the run took (`result.json`), so the share does not depend
on how fast the machine is, only on the ratio of generation to training speed on it. Prints them with the processor and the load average,
and writes bench/results/samples_cost.json, which the training chapter reads."""
import json, os, sys, tempfile
from pathlib import Path
from transformers.utils import logging as hf_logging
from ftbook.core import machine_info, write_atomic
from ftbook.training import train
from ftbook.tasks.worked_example import worked_example_config, worked_example_data

if __name__ == '__main__':
    hf_logging.disable_progress_bar(); hf_logging.set_verbosity_error()
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 24
    data = worked_example_data(600, 40, 40)  # as `make demo` (`ftbook demo`: n_train=600)
    out = Path(tempfile.mkdtemp())/'samples-cost'
    config = worked_example_config(out).override({'train.max_steps': steps})
    assert config.train.samples == 3, 'measure the default'
    res = train(config, data['train'], data['val'])
    samples = [json.loads(l) for l in (out/'samples.jsonl').read_text().splitlines()]
    per_validation = {s['step']: s['seconds'] for s in samples}
    full_run_validations = 75 // config.train.eval_every  # make demo's run: 75 steps (600 notes, batch 8, one epoch)
    result = dict(steps=res.steps, validations=len(per_validation), samples_per_validation=config.train.samples,
                  sample_seconds_per_validation=per_validation, sample_seconds=sum(per_validation.values()), run_seconds=res.train_seconds,
                  share_of_run=sum(per_validation.values()) / res.train_seconds,
                  seconds_per_step=(res.train_seconds - sum(per_validation.values())) / res.steps,
                  answers_stopped=sum(s['stopped'] for s in samples), answers=len(samples),
                  full_run_estimate=dict(validations=full_run_validations, sample_seconds=full_run_validations * sum(per_validation.values()) / len(per_validation)),
                  load_average=os.getloadavg(), machine=machine_info())
    print(json.dumps(result, indent=2, default=str))
    write_atomic(Path(__file__).parent/'results'/'samples_cost.json', json.dumps(result, indent=2, default=str))
