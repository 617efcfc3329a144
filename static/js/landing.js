// The landing page: its examples name the server the page came from.
for (const el of document.querySelectorAll('pre')) el.textContent = el.textContent.replaceAll('HOST', location.host);
