import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '.stack/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        fetch: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        URL: 'readonly',
        performance: 'readonly',
        setImmediate: 'readonly',
        Buffer: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                '**/services/*',
                '@redrive/intake',
                '@redrive/sync-worker',
                '@redrive/retry-scheduler',
                '@redrive/dlq-manager',
              ],
              message: 'services talk over JetStream, never by import',
            },
            { group: ['@redrive/*/src/*'], message: 'import a lib only through its index' },
          ],
        },
      ],
    },
  },
  {
    // End-to-end tests compose services in one process; services themselves never import each other.
    files: ['test/**', 'bench/**', 'scripts/**'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    files: ['**/*.mjs', 'scripts/**', 'test/fixtures/**'],
    languageOptions: {
      globals: { Buffer: 'readonly', process: 'readonly', setTimeout: 'readonly', console: 'readonly' },
    },
  },
);
