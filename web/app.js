// Placeholder: proves the page's script loads (CSP: scripts from 'self' only).
"use strict";
document.getElementById("status").textContent = "natter: script loaded";
