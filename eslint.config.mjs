import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    // Config files (*.mjs, *.mts) are not linted; the scripts and tools are (below).
    ignores: ['**/dist/**', '**/out-tsc/**', '**/node_modules/**', '.data/**', '.cache/**', 'bench-results/**', '**/*.mjs', '**/*.mts', '!scripts/**/*.mjs', '!tools/**/*.mjs'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Plain Node ESM checked through JSDoc (scripts/tsconfig.json, `nx run scripts:typecheck`):
    // the type-checked rules read that program; import type syntax is not JavaScript.
    files: ['scripts/**/*.mjs', 'tools/**/*.mjs'],
    languageOptions: {
      parserOptions: { projectService: false, project: ['./scripts/tsconfig.json'], tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'off',
      // tsc reports an undefined name (Node's globals are declared by @types/node).
      'no-undef': 'off',
    },
  },
);
