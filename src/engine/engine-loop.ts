// Drives an EngineCore in wall-clock time: steps back to back while there is work, sleeps when
// idle until a request arrives (or briefly, while requests wait for the planner's next re-plan).
// A step that throws (a lost device, a GPU error) fails every request and stops the loop.

import type { EngineCore } from './engine-core.js';

/** While requests wait but nothing can run (admission re-plans every 100 ms), poll this often. */
const WAITING_POLL_MS = 5;

export class EngineLoop {
  private wake: (() => void) | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  /** The error that stopped the loop, if one did. */
  failure: Error | null = null;

  constructor(
    private readonly core: EngineCore,
    /** Turns a step's failure into what requests see (a lost device becomes DeviceLostError). */
    private readonly mapError: (error: Error) => Error = (e) => e,
  ) {}

  /** Start (idempotent) and make sure the loop looks at new work now. */
  kick(): void {
    if (this.stopped) return;
    if (!this.running) this.running = this.run();
    this.wake?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let state: 'ran' | 'idle';
      try {
        state = await this.core.runStep();
      } catch (e) {
        const error = this.mapError(e instanceof Error ? e : new Error(String(e)));
        this.failure = error;
        this.stopped = true;
        this.core.close(error);
        return;
      }
      if (state === 'ran') {
        // Let message handlers (new requests, aborts) run between steps.
        await new Promise<void>((resolve) => setTimeout(resolve, 0));
        continue;
      }
      // stop() may have come while the step ran (its wake-up found nobody waiting): do not sleep then.
      if (this.stopped) break;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        if (this.core.size > 0) setTimeout(resolve, WAITING_POLL_MS);
      });
      this.wake = null;
    }
  }
}
