import { defineConfig } from 'vitest/config';

// One run over every package; `npm test` uses this and prints the totals.
export default defineConfig({
  test: {
    projects: ['packages/*/vitest.config.mts'],
  },
});
