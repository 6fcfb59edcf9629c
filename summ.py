import json,re,collections
rows=json.load(open('/tmp/launch-audit/kernels.json'))
def base(n):
    n=n.replace('ember::cuda::(anonymous namespace)::','').replace('ember::cuda::','').replace('ember::','')
    return n
spills=[r for r in rows if r['spill_st'] or r['spill_ld'] or r['stack']]
print("entries:",len(rows))
print("spills/stack:")
for r in spills: print(' ',r['arch'],r['regs'],r['smem'],r['stack'],r['spill_st'],r['spill_ld'],base(r['name'])[:200])
g=collections.defaultdict(list)
for r in rows:
    b=base(r['name']); k=re.split(r'[<(]',b)[0]
    g[(r['file'],k,r['arch'])].append(r)
for (f,k,a),rs in sorted(g.items()):
    regs=[r['regs'] for r in rs]; sm=[r['smem'] for r in rs]
    print(f"{f:24s} {k:34s} {a} n={len(rs):3d} regs {min(regs)}-{max(regs)} smem {min(sm)}-{max(sm)} spill_st_max {max(r['spill_st'] for r in rs)}")
