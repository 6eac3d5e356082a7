// The host's cache keys: distinct tuples give distinct keys whatever the strings hold.

import { describe, expect, it } from 'vitest';
import { cacheNamespace, conversationKey } from '../../src/host/keys.js';

describe('host cache keys', () => {
  it("app 'x|y' with conversation 'z' is not app 'x' with conversation 'y|z'", () => {
    expect(conversationKey('x|y', 'z')).not.toBe(conversationKey('x', 'y|z'));
    expect(conversationKey('x', 'y')).toBe(conversationKey('x', 'y'));
  });

  it('a shared namespace is no app, not an app named *; model and app separators cannot collide', () => {
    expect(cacheNamespace('m', null)).not.toBe(cacheNamespace('m', '*'));
    expect(cacheNamespace('a|b', 'c')).not.toBe(cacheNamespace('a', 'b|c'));
    expect(cacheNamespace('m', 'app')).toBe(cacheNamespace('m', 'app'));
  });
});
