// One request while the engine holds it: its spec and sink, its output so far, the KV it holds in
// the target session, its admission decision, and what its sink has been given. Shared by the step
// loop (engine-core.ts), output handling (output.ts) and KV ownership (kv-owner.ts).

import type { RoundTimeline } from '../scheduler/attainment.js';
import type { CoreRequestSpec, EmittedToken, RequestSink } from './request.js';

export interface Live {
  spec: CoreRequestSpec;
  sink: RequestSink;
  /** Output tokens so far (the last one is pending: not in the KV cache while decoding). */
  generated: number[];
  /** Target-session sequence id, or null while holding no KV. */
  seq: number | null;
  /** Tokens of prompt + output prefilled into `seq` (the prefill target is prompt + generated). */
  prefilled: number;
  decoding: boolean;
  decision: 'pending' | 'admitted' | 'best-effort';
  timeline: RoundTimeline & { tokenTimes: number[]; stageStarts: number[] };
  /** 0-based index of the output token that starts the next stage, once known (marker seen, or a replayed boundary). */
  stageAt: number | null;
  /** Replayed boundaries after stageAt. */
  boundaries: number[];
  /** Tokens not yet handed to the sink (held until admission for apps that fail declined requests). */
  unsent: EmittedToken[];
  /** Tokens handed to the sink. */
  sent: number;
  /** Prompt tokens found in the prefix cache (or a kept conversation) at submit. */
  cached: number;
  /** Full KV pages already published to the prefix cache. */
  publishedPages: number;
}
