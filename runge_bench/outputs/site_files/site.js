// runge-bench results site: every table sorted by a click on a header and filtered by text, in any
// column or a chosen one; tooltips naming the run behind a figure point. Hand-written, no
// dependencies; every page reads the same without it.
(function () {
  "use strict";
  function cellValue(row, i) {
    var text = row.cells[i] ? row.cells[i].textContent.trim() : "";
    var number = parseFloat(text.replace(/^≤\s*/, "").replace(/,/g, ""));
    return isNaN(number) || !/^[≤\s\d.,eE+-]/.test(text) ? text.toLowerCase() : number;
  }
  function sortBy(table, index, header) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    rows.sort(function (a, b) {
      var x = cellValue(a, index), y = cellValue(b, index);
      if (typeof x === typeof y) { return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1); }
      return typeof x === "number" ? -1 : 1;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) { th.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }
  function enhance(table, n) {
    if (!table.tHead || !table.tBodies.length) { return; }
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = th.textContent;
      button.title = "sort by " + th.textContent;
      button.addEventListener("click", function () { sortBy(table, i, th); });
      th.textContent = "";
      th.appendChild(button);
    });
    var label = document.createElement("label");
    label.className = "filter";
    label.textContent = "Filter rows: ";
    var input = document.createElement("input");
    input.type = "search";
    input.id = "filter-" + n;
    var column = document.createElement("select");
    column.setAttribute("aria-label", "column to filter");
    column.id = "filter-column-" + n;
    column.appendChild(new Option("in any column", "-1"));
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      column.appendChild(new Option("in " + th.textContent, String(i)));
    });
    function apply() {
      var q = input.value.toLowerCase(), i = parseInt(column.value, 10);
      Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
        var text = i < 0 ? r.textContent : (r.cells[i] ? r.cells[i].textContent : "");
        r.hidden = q !== "" && text.toLowerCase().indexOf(q) < 0;
      });
    }
    input.addEventListener("input", apply);
    column.addEventListener("change", apply);
    label.appendChild(input);
    label.appendChild(document.createTextNode(" "));
    label.appendChild(column);
    table.parentNode.insertBefore(label, table);
  }
  function tooltips() {
    var tip = document.createElement("div");
    tip.className = "tooltip";
    tip.setAttribute("role", "status");
    document.body.appendChild(tip);
    document.querySelectorAll("svg [data-run]").forEach(function (el) {
      el.addEventListener("mousemove", function (e) {
        tip.textContent = el.getAttribute("data-run");
        tip.style.left = e.clientX + 12 + "px";
        tip.style.top = e.clientY + 12 + "px";
        tip.style.display = "block";
      });
      el.addEventListener("mouseleave", function () { tip.style.display = "none"; });
    });
  }
  document.querySelectorAll("table").forEach(enhance);
  tooltips();
})();
