// The API's request and response types, generated from its OpenAPI schema: `npm run api`
// dumps `openapi.json` from the Python app and `npm run api-types` (part of the build) turns
// it into `api-schema.d.ts`. Name them here as `Schema<"OrderOut">` instead of writing them
// by hand, so a route change that breaks a page fails `tsc`.
import type { components } from "./api-schema";

export type Schema<K extends keyof components["schemas"]> = components["schemas"][K];
