"""Generates the PyTorch golden values that the 1cycle tests compare against.

Run it in a scratch environment that has torch, never in the project's:

    python -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch==2.13.0 numpy
    /tmp/torchvenv/bin/python tests/golden/make_golden.py

It writes `one_cycle_torch.json` (learning rate and momentum per step) and
`one_cycle_adam_torch.npz` (a small network trained with Adam + OneCycleLR).
"""

import json
import pathlib

import numpy as np
import torch

HERE = pathlib.Path(__file__).parent

SCHEDULE_CASES = [
    dict(total_steps=100, pct_start=0.3, anneal_strategy="cos", three_phase=False),
    dict(total_steps=100, pct_start=0.3, anneal_strategy="linear", three_phase=False),
    dict(total_steps=100, pct_start=0.3, anneal_strategy="cos", three_phase=True),
    dict(total_steps=100, pct_start=0.25, anneal_strategy="linear", three_phase=True),
    dict(total_steps=7, pct_start=0.25, anneal_strategy="cos", three_phase=False),
    dict(total_steps=3, pct_start=0.5, anneal_strategy="cos", three_phase=True),
    dict(total_steps=1000, pct_start=0.1, anneal_strategy="cos", three_phase=False,
         div_factor=10.0, final_div_factor=100.0, base_momentum=0.8, max_momentum=0.99),
    dict(total_steps=2345, pct_start=0.45, anneal_strategy="cos", three_phase=False,
         max_lr=3.0),
]


def schedule_values(case):
    case = dict(case)
    max_lr = case.pop("max_lr", 0.1)
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=max_lr, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, **case)
    lrs, momenta = [], []
    for _ in range(case["total_steps"]):
        lrs.append(optimizer.param_groups[0]["lr"])
        momenta.append(optimizer.param_groups[0]["momentum"])
        optimizer.step()
        scheduler.step()
    return {"case": dict(case, max_lr=max_lr), "learning_rates": lrs, "momenta": momenta}


def adam_training():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 5)).astype("float32")
    y = rng.normal(size=(128, 3)).astype("float32")
    w1 = rng.normal(scale=0.3, size=(5, 8)).astype("float32")
    b1 = np.zeros(8, "float32")
    w2 = rng.normal(scale=0.3, size=(8, 3)).astype("float32")
    b2 = np.zeros(3, "float32")
    batch_size, epochs, max_lr = 16, 5, 0.05
    total_steps = epochs * len(x) // batch_size

    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(w1.T))
        model[0].bias.copy_(torch.from_numpy(b1))
        model[2].weight.copy_(torch.from_numpy(w2.T))
        model[2].bias.copy_(torch.from_numpy(b2))
    optimizer = torch.optim.Adam(model.parameters(), lr=max_lr, eps=1e-12)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=max_lr, total_steps=total_steps, cycle_momentum=True
    )
    loss_fn = torch.nn.MSELoss()
    for _ in range(epochs):
        for start in range(0, len(x), batch_size):
            xb = torch.from_numpy(x[start:start + batch_size])
            yb = torch.from_numpy(y[start:start + batch_size])
            optimizer.zero_grad()
            loss_fn(model(xb), yb).backward()
            optimizer.step()
            scheduler.step()
    np.savez(
        HERE / "one_cycle_adam_torch.npz",
        x=x, y=y, w1=w1, b1=b1, w2=w2, b2=b2,
        final_w1=model[0].weight.detach().numpy().T,
        final_b1=model[0].bias.detach().numpy(),
        final_w2=model[2].weight.detach().numpy().T,
        final_b2=model[2].bias.detach().numpy(),
        batch_size=batch_size, epochs=epochs, max_lr=max_lr, total_steps=total_steps,
        torch_version=torch.__version__,
    )


if __name__ == "__main__":
    golden = {"torch_version": torch.__version__,
              "cases": [schedule_values(c) for c in SCHEDULE_CASES]}
    (HERE / "one_cycle_torch.json").write_text(json.dumps(golden, indent=1))
    adam_training()
    print("wrote golden values with torch", torch.__version__)
