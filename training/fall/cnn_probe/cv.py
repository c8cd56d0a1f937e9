"""5-fold subject-wise CV: GBM (training.fall.train.fit, unchanged) vs a small 1-D CNN on the
candidates' rotation-invariant sequences vs their logit average. Same candidates, same folds."""
import argparse, json, time
from pathlib import Path
from types import SimpleNamespace
from collections import Counter
import numpy as np
import torch
from torch import nn
from training.fall import train as T

ap = argparse.ArgumentParser()
ap.add_argument('--epochs', type=int, default=8)
ap.add_argument('--seed', type=int, default=0)
ap.add_argument('--fold_seed', type=int, default=0)
ap.add_argument('--width', type=int, default=16)
ap.add_argument('--lr', type=float, default=3e-3)
ap.add_argument('--tag', default='x')
ap.add_argument('--cut', action='store_true')
args = ap.parse_args()
torch.set_num_threads(2)
X = np.load('/tmp/fallE/X.npy'); m = np.load('/tmp/fallE/meta.npz')
rec, var, tgt, F = m['rec'], m['variant'], m['target'], m['F']
dsr, subjr, labr = m['ds'], m['subj'], m['label'] == 'fall'
nrec = len(dsr)
subjects = sorted(set(subjr))
perm = np.random.default_rng(args.fold_seed).permutation(subjects)
fold_of = {s: j % 5 for j, s in enumerate(perm)}
Fo = np.array([fold_of[subjr[r]] for r in rec])
recs_ns = [SimpleNamespace(dataset=d) for d in dsr]

def weights(idx):
    key = list(zip(dsr[rec[idx]], tgt[idx])); cc = Counter(key)
    w = np.array([1.0 / cc[k] for k in key]); w = w / w.mean(); w[tgt[idx] == 0] *= T.NEGATIVE_WEIGHT
    return w

class Net(nn.Module):
    def __init__(self, c=6, w=16):
        super().__init__()
        self.f = nn.Sequential(
            nn.Conv1d(c, w, 7, stride=2, padding=3), nn.BatchNorm1d(w), nn.ReLU(),
            nn.Conv1d(w, 2 * w, 5, stride=2, padding=2), nn.BatchNorm1d(2 * w), nn.ReLU(),
            nn.Conv1d(2 * w, 2 * w, 5, stride=2, padding=2), nn.BatchNorm1d(2 * w), nn.ReLU(),
            nn.AdaptiveAvgPool1d(10))  # 10 bins of 1.1 s keep where in time things happen
        self.h = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(20 * w, 16), nn.ReLU(), nn.Linear(16, 1))
    def forward(self, x):
        return self.h(self.f(x)).squeeze(1)

def train_cnn(idx):
    torch.manual_seed(args.seed); rng = np.random.default_rng(args.seed)
    net = Net(X.shape[1], args.width)
    xt = torch.from_numpy(X[idx]); yt = torch.from_numpy(tgt[idx].astype(np.float32))
    wt = torch.from_numpy(weights(idx).astype(np.float32))
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-3)
    steps = args.epochs * ((len(idx) + 255) // 256)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps)
    net.train()
    for ep in range(args.epochs):
        order = torch.from_numpy(rng.permutation(len(idx)))
        for b in range(0, len(idx), 256):
            j = order[b:b + 256]
            loss = (nn.functional.binary_cross_entropy_with_logits(net(xt[j]), yt[j], reduction='none') * wt[j]).mean()
            opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    net.eval(); return net

def logit_cnn(net, idx):
    with torch.no_grad():
        return torch.cat([net(torch.from_numpy(X[idx[b:b + 2048]])) for b in range(0, len(idx), 2048)]).numpy()

gpath = Path(f'/tmp/fallE/gbm_oof_f{args.fold_seed}.npz')
have_gbm = gpath.exists() and not args.cut
if args.cut:
    cz = np.load('/tmp/fallE/cut.npz'); cidx, cF = cz['idx'], cz['F']; cX = np.load('/tmp/fallE/X_cut.npy')
    cut_logit = {'gbm': np.full(len(rec), np.nan), 'cnn': np.full(len(rec), np.nan)}
cand_logit = {'gbm': np.full(len(rec), np.nan), 'cnn': np.full(len(rec), np.nan)}
if have_gbm: cand_logit['gbm'] = np.load(gpath)['logit']
t0 = time.time(); tcnn = 0.0
for f in range(5):
    tr = np.flatnonzero((Fo != f) & (tgt >= 0)); te = np.flatnonzero((Fo == f) & np.isin(var, (0, 1, 2)))
    if not have_gbm:
        cl = [SimpleNamespace(rec=int(rec[i]), target=int(tgt[i]), features=F[i]) for i in tr]
        clf = T.fit(cl, recs_ns)
        cand_logit['gbm'][te] = clf.decision_function(F[te])
    t1 = time.time(); net = train_cnn(tr); tcnn += time.time() - t1
    cand_logit['cnn'][te] = logit_cnn(net, te)
    if args.cut:
        pc = np.flatnonzero(Fo[cidx] == f)
        cut_logit['gbm'][cidx[pc]] = clf.decision_function(cF[pc])
        with torch.no_grad():
            cut_logit['cnn'][cidx[pc]] = net(torch.from_numpy(cX[pc])).numpy()
    print(f'fold {f} done {round(time.time() - t0)} s (cnn train {round(time.time() - t1)} s)', flush=True)
if not have_gbm: np.savez(gpath, logit=cand_logit['gbm'])
nparam = sum(p.numel() for p in net.parameters())
cand_logit['stack'] = (cand_logit['gbm'] + cand_logit['cnn']) / 2

def rec_scores(lg, v):
    s = np.zeros(nrec); sel = (var == v) & ~np.isnan(lg)
    np.maximum.at(s, rec[sel], 1 / (1 + np.exp(-lg[sel]))); return s

res = {}
if args.cut:
    cut_logit['stack'] = (cut_logit['gbm'] + cut_logit['cnn']) / 2
    sets = [('', cand_logit), ('cut4s ', cut_logit)]
else:
    sets = [('', cand_logit)]
print(vars(args), f'params {nparam}, cnn train total {round(tcnn)} s')
for pre, CL in sets:
  for v, vname in ((0, pre + 'as recorded'), (2, pre + '20-30 Hz')):
    for model in ('gbm', 'cnn', 'stack'):
        s = rec_scores(CL[model], v); parts = []
        for dn in ('FallAllD', 'WEDA-FALL'):
            mm = dsr == dn; sd, l = s[mm], labr[mm]
            thr98 = np.quantile(sd[~l], 0.98); s98 = (sd[l] > thr98).mean()
            thr95 = np.quantile(sd[l], 0.05); sp95 = (sd[~l] < thr95).mean()
            res[f'{vname}|{model}|{dn}'] = [round(float(s98), 3), round(float(sp95), 3)]
            parts.append(f'{dn} s@98 {s98:.3f} sp@95 {sp95:.3f}')
        print(f'{vname:18s} {model:6s} ' + ' | '.join(parts), flush=True)
json.dump(res, open(f'/tmp/fallE/res_{args.tag}.json', 'w'), indent=1)
np.savez(f'/tmp/fallE/oof_{args.tag}.npz', **cand_logit)
