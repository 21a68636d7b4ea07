"""PyTorch side of the training-throughput comparison (../shared/ref/TORCH_SHAPES.md).

Run: python benches/torch_speed.py --threads 1   (needs `pip install torch`)
"""
import argparse
import time

import torch
from torch import nn


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(2400, 128), nn.ReLU(), nn.Dropout(0.1),
                                 nn.Linear(128, 128), nn.ReLU(), nn.Dropout(0.1), nn.Linear(128, 20))

    def forward(self, x):
        return self.net(x)


class Rnn(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.rnn = cell(80, 64, num_layers=2, batch_first=True, dropout=0, bias=True)
        self.head = nn.Linear(64, 20)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1, :])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    X = torch.randn(4000, 30, 80)
    Y = (torch.rand(4000, 20) < 0.5).float()
    print("model  threads  train samples/s  infer samples/s  params")
    for name, make in [("mlp", Mlp), ("lstm", lambda: Rnn(nn.LSTM)), ("gru", lambda: Rnn(nn.GRU))]:
        torch.manual_seed(1)
        model = make()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
        loss_fn = nn.BCEWithLogitsLoss()
        timed = 0.0
        for epoch in range(4):
            model.train()
            perm = torch.randperm(4000)
            start = time.perf_counter()
            for i in range(0, 4000, 64):
                idx = perm[i:i + 64]
                opt.zero_grad()
                loss = loss_fn(model(X[idx]), Y[idx])
                loss.backward()
                opt.step()
            if epoch > 0:
                timed += time.perf_counter() - start
        model.eval()
        infer = 0.0
        with torch.inference_mode():
            for p in range(4):
                start = time.perf_counter()
                for i in range(0, 4000, 256):
                    model(X[i:i + 256])
                if p > 0:
                    infer += time.perf_counter() - start
        params = sum(p.numel() for p in model.parameters())
        print(f"{name:<6} {args.threads:>7}  {3 * 4000 / timed:>15.0f}  {3 * 4000 / infer:>15.0f}  {params}")


if __name__ == "__main__":
    main()
