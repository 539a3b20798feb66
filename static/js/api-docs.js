// /api/v1/docs: Swagger UI draws the site's OpenAPI document (notify_site/views/api_docs.py).
// A file, not an inline script: the CSP allows none. The validator badge is off: it would
// send the document to swagger.io.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  if (!root || !window.SwaggerUIBundle) return;
  window.SwaggerUIBundle({
    url: root.dataset.url,
    domNode: root,
    deepLinking: true,
    validatorUrl: null,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
