/**
 * @module viewer/raw
 * Vite's `?raw` imports: the file's text as a string (used to bundle the example dumps).
 */
declare module '*?raw' {
  const text: string;
  export default text;
}
