// WGSL files are imported as text (`?raw`), in Vite builds, Vitest and the Vite module runner alike.
declare module '*.wgsl?raw' {
  const source: string;
  export default source;
}
