"""Numpy forward of the net (eval mode, BN folded) vs torch, and its cost per candidate."""
import sys, time
import numpy as np, torch
sys.argv = ['cv.py']
torch.set_num_threads(1)
exec(open('/tmp/fallE/cv.py').read().split("def train_cnn")[0].split("args = ap.parse_args()")[0])
args = ap.parse_args([])
exec(open('/tmp/fallE/cv.py').read().split("class Net")[1].split("def train_cnn")[0].join(["class Net", ""]))
torch.manual_seed(0); net = Net(6, 16)
for mod in net.modules():
    if isinstance(mod, nn.BatchNorm1d):
        mod.running_mean.normal_(); mod.running_var.uniform_(0.5, 2); mod.weight.data.normal_(); mod.bias.data.normal_()
net.eval()
def fold(conv, bn):
    s = bn.weight.detach().numpy() / np.sqrt(bn.running_var.numpy() + bn.eps)
    W = conv.weight.detach().numpy() * s[:, None, None]
    b = (conv.bias.detach().numpy() - bn.running_mean.numpy()) * s + bn.bias.detach().numpy()
    return W.astype(np.float32), b.astype(np.float32), conv.stride[0], conv.padding[0]
f = net.f
layers = [fold(f[0], f[1]), fold(f[3], f[4]), fold(f[6], f[7])]
l1, l2 = net.h[2], net.h[4]
W1, b1 = l1.weight.detach().numpy(), l1.bias.detach().numpy()
W2, b2 = l2.weight.detach().numpy(), l2.bias.detach().numpy()
def conv(x, W, b, st, pad):  # x (m, c, n)
    m, c, n = x.shape; o, _, k = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad)))
    nout = (n + 2 * pad - k) // st + 1
    cols = np.lib.stride_tricks.sliding_window_view(xp, k, axis=2)[:, :, ::st][:, :, :nout]  # (m,c,nout,k)
    y = np.einsum('mcnk,ock->mon', cols, W, optimize=True) + b[None, :, None]
    return np.maximum(y, 0)
def forward(x):
    for W, b, st, pad in layers: x = conv(x, W, b, st, pad)
    m, c, n = x.shape  # adaptive avg pool to 10 bins (torch bin edges)
    edges = [(int(np.floor(i * n / 10)), int(np.ceil((i + 1) * n / 10))) for i in range(10)]
    p = np.stack([x[:, :, a:e].mean(axis=2) for a, e in edges], axis=2).reshape(m, -1)
    return np.maximum(p @ W1.T + b1, 0) @ W2.T + b2
x = np.load('/tmp/fallE/X.npy', mmap_mode='r')[:64].copy()
with torch.no_grad(): ref = net(torch.from_numpy(x)).numpy()
out = forward(x)[:, 0]
print('max |numpy - torch|', float(np.abs(out - ref).max()))
for m in (1, 8, 64):
    xs = x[:m]; t = time.perf_counter(); R = 50
    for _ in range(R): forward(xs)
    print(f'batch {m}: {(time.perf_counter() - t) / R * 1e3:.2f} ms per call, {(time.perf_counter() - t) / R / m * 1e3:.3f} ms per candidate')
