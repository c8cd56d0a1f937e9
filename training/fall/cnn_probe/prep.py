"""Build the GBM's candidates (training.fall.train.build, unchanged) and capture, for every
candidate, its 50 Hz window -> rotation-invariant sequences for a 1-D CNN. With --cut, also
every as-recorded and 20-30 Hz candidate with its stream stopped 4 s after the impact
(sequences and GBM features), for the "no clue from where a clip ends" check."""
import pickle, sys, time
from pathlib import Path
import numpy as np
from gateway.detection import fall
from training.fall.dataset import load
from training.fall import train as T

t0 = time.time()
recs = load(Path('/work/shared/data/fall'), Path('/tmp/fallE/recs.pkl'))
print(len(recs), 'recordings loaded', round(time.time() - t0), 's', flush=True)

grids: list[np.ndarray] = []
cuts: list[tuple[int, int]] = []  # (window length, impact offset) of each truncated copy
_res, _imp = fall.resample_recording, fall.impact_features
def res(ts, xyz):
    g = _res(ts, xyz); grids.append(g); return g
def imp(window, impact):
    cuts.append((len(window), impact)); return _imp(window, impact)
fall.resample_recording = res; fall.impact_features = imp
cands = T.build(recs)
fall.resample_recording, fall.impact_features = _res, _imp
assert len(grids) == len(recs) * T.VARIANTS
print(len(cands), 'candidates', round(time.time() - t0), 's', flush=True)

PRE, POST = fall.PRE, fall.POST
L = PRE + POST
def seqs(win: np.ndarray, impact: int) -> np.ndarray:
    """win (n,3) in g covering [impact-before, stop); returns (6, L) channels on the fixed span."""
    n = len(win)
    before = impact; after = n - impact
    full = np.empty((L, 3)); mask = np.zeros(L)
    s0 = PRE - before; s1 = PRE + after
    full[s0:s1] = win; mask[s0:s1] = 1
    full[:s0] = win[0]; full[s1:] = win[-1]  # hold edge values (no data there: mask 0)
    mag = np.linalg.norm(full, axis=1)
    lp = fall.smooth(full[None])[0]
    lpm = np.linalg.norm(lp, axis=1)
    lo = max(0, s0)
    g = lp[lo:PRE - 10].mean(axis=0) if PRE - 10 - lo >= 5 else lp[lo:PRE + 1].mean(axis=0)
    # mean pre-impact gravity direction (up to 0.2 s before the impact)
    g = g / np.linalg.norm(g)
    cosang = (lp @ g) / np.maximum(lpm, 1e-6)
    ang = np.arccos(np.clip(cosang, -1, 1)) / np.pi
    # angle to the settled direction (mean of 1.5-4 s after, or the last 1.5 s that arrived)
    a, b = PRE + 75, min(PRE + 200, s1)
    if b - a < 25: a, b = max(PRE, s1 - 75), s1
    h = lp[a:b].mean(axis=0); h = h / max(np.linalg.norm(h), 1e-6)
    ang2 = np.arccos(np.clip((lp @ h) / np.maximum(lpm, 1e-6), -1, 1)) / np.pi
    jerk = np.r_[0.0, np.linalg.norm(np.diff(full, axis=0), axis=1) * fall.GRID_HZ]
    out = np.stack([np.clip(mag, 0, 8) - 1, np.clip(lpm, 0, 8) - 1, ang, ang2,
                    np.log1p(jerk / 10.0), mask])
    return out.astype(np.float32)

X = np.empty((len(cands), 6, L), np.float32)
ci = 0
for k, c in enumerate(cands):
    grid = grids[c.rec * T.VARIANTS + c.variant % 10]
    impact = int(round(c.impact_s * fall.GRID_HZ))
    start = max(0, impact - PRE)
    if c.variant >= 10:
        n, off = cuts[ci]; ci += 1
        assert off == impact - start
        stop = start + n
    else:
        stop = min(impact + POST, len(grid))
    X[k] = seqs(grid[start:stop], impact - start)
assert ci == len(cuts)
meta = dict(
    rec=np.array([c.rec for c in cands]), variant=np.array([c.variant for c in cands]),
    target=np.array([c.target for c in cands]), F=np.array([c.features for c in cands]),
    ds=np.array([recs[i].dataset for i in range(len(recs))]),
    subj=np.array([recs[i].subject for i in range(len(recs))]),
    label=np.array([recs[i].label for i in range(len(recs))]),
    activity=np.array([recs[i].activity for i in range(len(recs))]))
np.save('/tmp/fallE/X.npy', X)
np.savez('/tmp/fallE/meta.npz', **meta)
print('done', X.shape, round(time.time() - t0), 's', flush=True)

if '--cut' in sys.argv[1:]:
    sel = np.flatnonzero(np.isin([c.variant for c in cands], (0, 2)))
    Xc = np.empty((len(sel), 6, L), np.float32); Fc = np.empty((len(sel), fall.N_FEATURES))
    for r, k in enumerate(sel):
        c = cands[k]
        grid = grids[c.rec * T.VARIANTS + c.variant]
        impact = int(round(c.impact_s * fall.GRID_HZ))
        start = max(0, impact - PRE); stop = min(impact + 200, len(grid))  # stream stops 4 s after
        Xc[r] = seqs(grid[start:stop], impact - start)
        Fc[r] = fall.impact_features(grid[start:stop], impact - start)
    np.save('/tmp/fallE/X_cut.npy', Xc); np.savez('/tmp/fallE/cut.npz', idx=sel, F=Fc)
    print('cut done', Xc.shape, round(time.time() - t0), 's', flush=True)
