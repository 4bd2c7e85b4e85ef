/**
 * Vite build of the web viewer (`npm run build:viewer`): src/viewer/index.html and everything it
 * imports (the core and mtree modules included) into dist/viewer/, with relative asset paths so the
 * page works from any URL prefix.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('./src/viewer', import.meta.url)),
  base: './',
  publicDir: false,
  build: {
    outDir: fileURLToPath(new URL('./dist/viewer', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
  },
  server: { host: '127.0.0.1' },
});
