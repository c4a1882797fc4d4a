// Shared by the generators of the differential tests (policy_diff, sigv4_diff): their
// `--name value` flags and a small seeded PRNG (sfc32), so that a run is reproducible from its seed.
// No dependencies.

// ['--seed', '7', '--count', '10'] -> {seed: '7', count: '10'}
export function parseFlags(argv) {
  const out = {}
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith('--')) out[argv[i].slice(2)] = argv[i + 1]
  }
  return out
}

// A seeded stream of numbers in [0, 1) and the helpers built on it. `stream` tells generators
// sharing a seed apart.
export function seeded(seed, stream) {
  let a = 0x9e3779b9, b = seed, c = seed ^ 0xdeadbeef, d = stream
  const rand = () => {
    a |= 0; b |= 0; c |= 0; d |= 0
    const t = (((a + b) | 0) + d) | 0
    d = (d + 1) | 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) | 0
    c = (c << 21) | (c >>> 11)
    c = (c + t) | 0
    return (t >>> 0) / 4294967296
  }
  for (let i = 0; i < 20; i++) rand()
  const int = (n) => Math.floor(rand() * n)
  return { rand, int, chance: (p) => rand() < p, pick: (xs) => xs[int(xs.length)] }
}
