// Shared Vitest settings for every package (see packages/*/vitest.config.mts).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Resolve workspace packages to their TypeScript sources, so tests need no build.
  // Vitest resolves Node-side imports with the SSR settings.
  resolve: { conditions: ['@jetactor/source', 'module', 'node', 'import', 'default'] },
  ssr: { resolve: { conditions: ['@jetactor/source', 'module', 'node', 'import', 'default'], externalConditions: ['@jetactor/source'] } },
  test: {
    include: ['tests/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
