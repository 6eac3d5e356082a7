// Lint: ESLint's recommended rules plus typescript-eslint's, and for the TypeScript sources the
// type-aware rules that catch real bugs here (promises dropped or misused, throwing non-errors,
// awaits of non-promises). Not the whole recommendedTypeChecked set: its no-unsafe-*
// family flags every read of parsed JSON (configs, tokenizers, traces, profiles), which this code
// validates field by field instead of casting; require-await flags async functions kept async on
// purpose (an interface's Promise contract); no-base-to-string flags String(unknown) in error messages;
// no-unnecessary-type-assertion removed assertions tsc needs (literal widening, indexed access).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'lib/', '.build/', 'test-results/', 'playwright-report/', 'scratch/', '.*/', 'test/fixtures/', 'examples/*/node_modules/', 'examples/*/dist/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/prefer-promise-reject-errors': 'error',
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      eqeqeq: ['error', 'always'],
    },
  },
  {
    files: ['examples/browser/**/*.js'],
    languageOptions: { globals: { document: 'readonly', window: 'readonly', console: 'readonly' } },
  },
  {
    files: ['examples/node*/**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
  {
    files: ['scripts/**/*.mjs', 'bin/**/*.mjs', '*.config.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
