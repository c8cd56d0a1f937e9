"""From saved out-of-fold candidate logits: CNN seed ensembles, per-dataset thresholds at 0.98 spec."""
import sys
import numpy as np
m = np.load('/tmp/fallE/meta.npz')
rec, var = m['rec'], m['variant']; dsr, labr = m['ds'], m['label'] == 'fall'; n = len(dsr)
def rs(lg, v):
    s = np.zeros(n); sel = (var == v) & ~np.isnan(lg); np.maximum.at(s, rec[sel], 1 / (1 + np.exp(-lg[sel]))); return s
def pts(s):
    out = []
    for dn in ('FallAllD', 'WEDA-FALL'):
        mm = dsr == dn; sd, l = s[mm], labr[mm]
        t98 = np.quantile(sd[~l], 0.98); t95 = np.quantile(sd[l], 0.05)
        out.append(f'{dn} s@98 {(sd[l] > t98).mean():.3f} sp@95 {(sd[~l] < t95).mean():.3f} (thr@98spec {t98:.2f})')
    return ' | '.join(out)
for fs, tags in ((0, ['f0s0', 'f0s1', 'f0s2']),):
    O = {t: np.load(f'/tmp/fallE/oof_{t if t != "f0s0" else "e8"}.npz') for t in tags}
    g = O[tags[0]]['gbm']; c3 = np.mean([O[t]['cnn'] for t in tags], axis=0)
    for v, vn in ((0, 'as recorded'), (2, '20-30 Hz')):
        print(f'split {fs} {vn:11s} gbm         ', pts(rs(g, v)))
        print(f'split {fs} {vn:11s} cnn x3 seeds', pts(rs(c3, v)))
        print(f'split {fs} {vn:11s} stack cnn x3', pts(rs((g + c3) / 2, v)))
        for t in tags:
            print(f'split {fs} {vn:11s} stack {t}  ', pts(rs((g + O[t]['cnn']) / 2, v)))
        # at the shipped threshold 0.5
        for name, lg in (('gbm', g), ('stack', (g + O[tags[0]]['cnn']) / 2)):
            s = rs(lg, v); parts = []
            for dn in ('FallAllD', 'WEDA-FALL'):
                mm = dsr == dn; parts.append(f'{dn} {(s[mm][labr[mm]] >= .5).mean():.3f}/{(s[mm][~labr[mm]] < .5).mean():.3f}')
            print(f'split {fs} {vn:11s} at 0.5 {name:5s} sens/spec', ' | '.join(parts))
