// Error messages of the parsers describe bad values in a bounded way: no recursion into a value
// nested thousands deep (a stack overflow once escaped the safetensors parser and the trace parser
// as an untyped RangeError), and no message longer than asked.

import { describe, expect, it } from 'vitest';
import { describeValue } from '../../src/model/describe.js';
import { SafetensorsError } from '../../src/model/errors.js';
import { parseSafetensors } from '../../src/model/safetensors.js';
import { parseTrace, TraceError } from '../../src/sim/trace.js';

const deep = (d: number): string => '['.repeat(d) + ']'.repeat(d);

describe('describeValue', () => {
  it('is JSON for small values and bounded for large or deep ones', () => {
    expect(describeValue(5)).toBe('5');
    expect(describeValue('x')).toBe('"x"');
    expect(describeValue({ a: [1, 2] })).toBe('{"a":[1,2]}');
    expect(describeValue(undefined)).toBe('undefined');
    expect(describeValue(JSON.parse(deep(100_000)))).toBe('[[[[...]]]]');
    expect(describeValue(Array.from({ length: 10_000 }, (_, i) => i)).length).toBeLessThanOrEqual(60);
  });

  it('a safetensors header entry nested 5,000 deep is a SafetensorsError', () => {
    const header = new TextEncoder().encode(`{"w":${deep(5000)}}`);
    const bytes = new Uint8Array(8 + header.length);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
    bytes.set(header, 8);
    expect(() => parseSafetensors(bytes, 'model.safetensors')).toThrow(SafetensorsError);
  });

  it('a trace field nested 5,000 deep is a TraceError', () => {
    expect(() => parseTrace({ apps: { chat: { ttft_ms: JSON.parse(deep(5000)), tpot_ms: 50 } }, requests: [] })).toThrow(TraceError);
  });
});
