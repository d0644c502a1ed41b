// Lint rules for the UI: typescript-eslint recommended, React hooks rules, no `any`.
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import reactHooks from "eslint-plugin-react-hooks";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.{ts,tsx}"],
    plugins: { "react-hooks": reactHooks },
    rules: {
      "react-hooks/rules-of-hooks": "error",
      "react-hooks/exhaustive-deps": "warn",
      "@typescript-eslint/no-explicit-any": "error",
      // Series names and labels come from whoever produces metrics: never render strings as
      // HTML, and never evaluate them (the content security policy has no 'unsafe-eval').
      "no-restricted-syntax": [
        "error",
        { selector: "JSXAttribute[name.name='dangerouslySetInnerHTML']", message: "never render strings as HTML" },
        { selector: "MemberExpression[property.name=/^(innerHTML|outerHTML|insertAdjacentHTML)$/]", message: "never write strings as HTML" },
        { selector: "CallExpression[callee.name='eval'], NewExpression[callee.name='Function']", message: "the CSP forbids eval" },
      ],
    },
  },
  {
    // The browser scenarios: node (CommonJS) around callbacks that run in the page.
    files: ["e2e/**/*.cjs"],
    languageOptions: {
      sourceType: "commonjs",
      globals: { require: "readonly", process: "readonly", console: "readonly", document: "readonly", performance: "readonly" },
    },
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
  {
    files: ["**/*.{js,mjs}"],
    languageOptions: { globals: { console: "readonly", process: "readonly", URL: "readonly" } },
  },
);
