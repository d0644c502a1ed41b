// Lets TypeScript accept the stylesheet import that esbuild turns into dist/app.css.
declare module "*.css";
