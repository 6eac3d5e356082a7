// Performance profiles committed with the simulator, each with its origin in the file:
// - paper: the SLOs-Serve authors' OPT-6.7B (+ OPT-125M draft) fit, to compare our ratios with theirs.
// - h200 (the default): calibrated by webslo on a lent NVIDIA H200 with a synthetic Qwen2.5-1.5B and a
//   7-layer self draft (scripts/bench-gpu.sh; the origin field says how).
import h200 from './profiles/h200-qwen2.5-1.5b.json';
import paper from './profiles/paper-opt-6.7b.json';

export const PROFILES = {
  default: h200 as unknown,
  h200: h200 as unknown,
  paper: paper as unknown,
} as const;

export type ProfileName = keyof typeof PROFILES;
