// The one preprocessing step WGSL goes through: variants by feature and size.
//
//   #if NAME / #if !NAME / #elif NAME / #else / #endif   on their own lines, NAME a boolean define
//   #include NAME   inserts a library source (shaders/lib/*.wgsl) given in `includes`
//   numeric defines become `const NAME: u32 = <n>u;` (or `f32` for non-integers) placed right after
//   the module's enable/requires/diagnostic directives, usable in @workgroup_size and array sizes.
//
// A name in #if that was not defined is an error (a typo would otherwise silently pick a branch).

import { ShaderError } from './errors.js';

export type WgslDefines = Readonly<Record<string, boolean | number>>;

interface Frame {
  /** Whether any branch of this #if chain has been taken yet. */
  taken: boolean;
  /** Whether the current branch emits lines. */
  active: boolean;
  /** Whether the enclosing context emits lines. */
  parentActive: boolean;
  sawElse: boolean;
  line: number;
}

const DIRECTIVE = /^\s*#(if|elif|else|endif)\b\s*(.*?)\s*$/;
const NAME = /^(!?)([A-Za-z_][A-Za-z0-9_]*)$/;
const WGSL_DIRECTIVE = /^\s*(enable|requires|diagnostic)\b/;

function evalCondition(kernel: string, expr: string, defines: WgslDefines, line: number): boolean {
  const m = NAME.exec(expr);
  if (!m) throw new ShaderError(kernel, `line ${line}: '#if ${expr}' must be NAME or !NAME`);
  const [, not, name] = m as unknown as [string, string, string];
  if (!(name in defines)) {
    throw new ShaderError(kernel, `line ${line}: '${name}' is not defined (defined: ${Object.keys(defines).join(', ') || 'none'})`);
  }
  const value = defines[name];
  if (typeof value !== 'boolean') {
    throw new ShaderError(kernel, `line ${line}: '${name}' is numeric; #if takes boolean defines`);
  }
  return not ? !value : value;
}

function constantLine(name: string, value: number): string {
  if (Number.isInteger(value) && value >= 0 && value <= 0xffffffff) return `const ${name}: u32 = ${value}u;`;
  if (Number.isFinite(value)) return `const ${name}: f32 = ${String(value)}${Number.isInteger(value) ? '.0' : ''};`;
  throw new RangeError(`define ${name} = ${value} is not a finite number`);
}

const INCLUDE = /^\s*#include\s+([A-Za-z_][A-Za-z0-9_]*)\s*$/;

export type WgslIncludes = Readonly<Record<string, string>>;

/** Replace `#include NAME` lines with the named sources (recursively, each at most once). */
function expandIncludes(kernel: string, source: string, includes: WgslIncludes, seen: Set<string>): string {
  return source
    .split('\n')
    .map((line, i) => {
      const m = INCLUDE.exec(line);
      if (!m) return line;
      const name = m[1]!;
      const lib = includes[name];
      if (lib === undefined) {
        throw new ShaderError(kernel, `line ${i + 1}: #include ${name}: no such library (have: ${Object.keys(includes).join(', ') || 'none'})`);
      }
      if (seen.has(name)) return `// (${name} already included)`;
      seen.add(name);
      return expandIncludes(kernel, lib, includes, seen);
    })
    .join('\n');
}

export function preprocessWgsl(kernel: string, source: string, defines: WgslDefines = {}, includes: WgslIncludes = {}): string {
  source = expandIncludes(kernel, source, includes, new Set());
  const out: string[] = [];
  const stack: Frame[] = [];
  const lines = source.split('\n');
  const active = (): boolean => (stack.length === 0 ? true : stack[stack.length - 1]!.active);
  lines.forEach((text, i) => {
    const line = i + 1;
    const d = DIRECTIVE.exec(text);
    if (!d) {
      if (active()) out.push(text);
      return;
    }
    const [, kind, expr] = d as unknown as [string, string, string];
    if (kind === 'if') {
      const parentActive = active();
      const cond = parentActive ? evalCondition(kernel, expr, defines, line) : (evalCondition(kernel, expr, defines, line), false);
      stack.push({ taken: cond, active: parentActive && cond, parentActive, sawElse: false, line });
      return;
    }
    const top = stack[stack.length - 1];
    if (!top) throw new ShaderError(kernel, `line ${line}: #${kind} without #if`);
    if (kind === 'elif') {
      if (top.sawElse) throw new ShaderError(kernel, `line ${line}: #elif after #else`);
      const cond = evalCondition(kernel, expr, defines, line);
      top.active = top.parentActive && !top.taken && cond;
      top.taken ||= cond;
    } else if (kind === 'else') {
      if (expr) throw new ShaderError(kernel, `line ${line}: #else takes no condition`);
      if (top.sawElse) throw new ShaderError(kernel, `line ${line}: second #else`);
      top.sawElse = true;
      top.active = top.parentActive && !top.taken;
      top.taken = true;
    } else {
      stack.pop();
    }
  });
  if (stack.length > 0) {
    throw new ShaderError(kernel, `line ${stack[stack.length - 1]!.line}: #if without #endif`);
  }

  const constants = Object.entries(defines)
    .filter((e): e is [string, number] => typeof e[1] === 'number')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => constantLine(name, value));
  if (constants.length === 0) return out.join('\n');
  let insertAt = 0;
  for (let i = 0; i < out.length; i++) {
    const t = out[i]!.trim();
    if (WGSL_DIRECTIVE.test(t)) insertAt = i + 1;
    else if (t !== '' && !t.startsWith('//')) break;
  }
  out.splice(insertAt, 0, ...constants);
  return out.join('\n');
}

/** A stable key for a define set (order-independent), used by the pipeline cache. */
export function definesKey(defines: WgslDefines): string {
  return Object.keys(defines)
    .sort()
    .map((k) => `${k}=${String(defines[k])}`)
    .join(',');
}
