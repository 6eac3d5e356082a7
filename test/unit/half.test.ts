import { describe, expect, it } from 'vitest';
import { bf16BitsToNumber, f16BitsToNumber, numberToBf16Bits, numberToF16Bits } from '../../src/numeric/half.js';

describe('binary16', () => {
  it('round-trips every non-NaN bit pattern exactly', () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = f16BitsToNumber(h);
      if (Number.isNaN(v)) continue;
      expect(numberToF16Bits(v)).toBe(h);
    }
  });

  it('decodes known values', () => {
    expect(f16BitsToNumber(0x3c00)).toBe(1);
    expect(f16BitsToNumber(0xc000)).toBe(-2);
    expect(f16BitsToNumber(0x7bff)).toBe(65504);
    expect(f16BitsToNumber(0x0001)).toBe(2 ** -24);
    expect(f16BitsToNumber(0x7c00)).toBe(Infinity);
    expect(Number.isNaN(f16BitsToNumber(0x7e00))).toBe(true);
    expect(Object.is(f16BitsToNumber(0x8000), -0)).toBe(true);
  });

  it('rounds to nearest, ties to even, and overflows to infinity', () => {
    // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: ties to the even mantissa (1).
    expect(numberToF16Bits(1 + 2 ** -11)).toBe(0x3c00);
    // 1 + 3*2^-11 lies between 1+2^-10 (odd) and 1+2^-9 (even): goes up.
    expect(numberToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(numberToF16Bits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01);
    expect(numberToF16Bits(65520)).toBe(0x7c00);
    expect(numberToF16Bits(65519)).toBe(0x7bff);
    expect(numberToF16Bits(2 ** -25)).toBe(0); // half of the smallest subnormal: ties to even (0)
    expect(numberToF16Bits(3 * 2 ** -25)).toBe(2);
    expect(numberToF16Bits(-0)).toBe(0x8000);
    expect(numberToF16Bits(NaN)).toBe(0x7e00);
  });
});

describe('bfloat16', () => {
  it('is the high half of a float32', () => {
    expect(bf16BitsToNumber(0x3f80)).toBe(1);
    expect(bf16BitsToNumber(0xc040)).toBe(-3);
    expect(bf16BitsToNumber(0x3e20)).toBe(0.15625);
  });

  it('rounds float32 to nearest even and round-trips every non-NaN pattern', () => {
    for (let b = 0; b < 0x10000; b++) {
      const v = bf16BitsToNumber(b);
      if (!Number.isNaN(v)) expect(numberToBf16Bits(v)).toBe(b);
    }
    expect(numberToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie -> even
    expect(numberToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie -> even (up)
    expect(numberToBf16Bits(1 + 2 ** -8 + 2 ** -12)).toBe(0x3f81);
  });
});
