// MathJax 3 reads the math that pymdownx.arithmatex wraps in <span class="arithmatex">\( ... \)</span>
// (inline) and <div class="arithmatex">\[ ... \]</div> (display); it is served from the site itself.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
};
