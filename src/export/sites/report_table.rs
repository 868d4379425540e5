//! The sites table's controls in report.html: sorting by clicking a column
//! header and filtering by kind, minimum structure score and minimum area,
//! with a small inline script (no external script: the page still opens
//! offline). Rows carry their values as `data-kind`, `data-score`,
//! `data-area` and `data-rank`; filtered-out rows get the `hidden`
//! attribute.
//!
//! The page also acts on its URL's fragment, as a click or an entry would:
//! `#sort=area` clicks the area header (`rank`, `score`, `area`; a second
//! `sort` of the same key clicks twice), `kind=linear`, `min-score=0.5`
//! and `min-area=1000` set the filters, joined with `&`. So a filtered view
//! can be bookmarked, and a headless browser can check the script.

use crate::sites::classify::KINDS;
use std::fmt::Write as _;

/// The filter controls, above the table.
pub fn controls(o: &mut String) {
    let _ = write!(
        o,
        "<p id=\"filters\" class=\"muted\">Show <select id=\"f-kind\"><option value=\"\">all kinds</option>"
    );
    for k in KINDS {
        let _ = write!(
            o,
            "<option value=\"{}\">{}</option>",
            k.name(),
            k.name().replace('_', " ")
        );
    }
    let _ = writeln!(
        o,
        "</select> with structure score ≥ <input id=\"f-score\" type=\"number\" min=\"0\" max=\"1\" step=\"0.05\" value=\"0\" style=\"width:5em\"> and area ≥ <input id=\"f-area\" type=\"number\" min=\"0\" step=\"100\" value=\"0\" style=\"width:7em\"> m² · <span id=\"f-count\"></span> · click a column header to sort</p>"
    );
}

/// The script, after the table.
pub const SCRIPT: &str = r#"<script>
(function () {
  var table = document.getElementById('sites');
  if (!table) return;
  var body = table.tBodies[0];
  var kind = document.getElementById('f-kind');
  var score = document.getElementById('f-score');
  var area = document.getElementById('f-area');
  var count = document.getElementById('f-count');
  var rows = Array.prototype.slice.call(body.rows);
  function filter() {
    var k = kind.value, s = parseFloat(score.value) || 0, a = parseFloat(area.value) || 0, shown = 0;
    rows.forEach(function (r) {
      var ok = (!k || r.dataset.kind === k) && parseFloat(r.dataset.score) >= s && parseFloat(r.dataset.area) >= a;
      r.hidden = !ok;
      if (ok) shown++;
    });
    count.textContent = shown + ' of ' + rows.length + ' sites shown';
    table.dataset.shown = shown;
  }
  var state = { key: 'rank', desc: false };
  function sort(key) {
    // Rank ascends first; score and area descend first; a second click reverses.
    state.desc = state.key === key ? !state.desc : key !== 'rank';
    state.key = key;
    rows.sort(function (x, y) {
      var d = parseFloat(x.dataset[key]) - parseFloat(y.dataset[key]);
      if (d === 0) d = parseFloat(x.dataset.rank) - parseFloat(y.dataset.rank);
      return state.desc ? -d : d;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.querySelectorAll('th[data-sort]'), function (th) {
      th.setAttribute('aria-sort', th.dataset.sort === key ? (state.desc ? 'descending' : 'ascending') : 'none');
    });
    table.dataset.sorted = key + (state.desc ? ' descending' : ' ascending');
  }
  Array.prototype.forEach.call(table.tHead.querySelectorAll('th[data-sort]'), function (th) {
    th.style.cursor = 'pointer';
    th.title = 'sort';
    th.addEventListener('click', function () { sort(th.dataset.sort); });
  });
  [kind, score, area].forEach(function (e) {
    e.addEventListener('input', filter);
    e.addEventListener('change', filter);
  });
  filter();
  // The URL's fragment, applied as the user would: clicks and entries.
  (location.hash || '').replace(/^#/, '').split('&').forEach(function (part) {
    var kv = part.split('='), k = kv[0], v = decodeURIComponent(kv[1] || '');
    if (k === 'sort') {
      var th = table.tHead.querySelector('th[data-sort="' + v + '"]');
      if (th) th.dispatchEvent(new MouseEvent('click', { bubbles: true }));
    } else if (k === 'kind' || k === 'min-score' || k === 'min-area') {
      var e = { 'kind': kind, 'min-score': score, 'min-area': area }[k];
      e.value = v;
      e.dispatchEvent(new Event('change', { bubbles: true }));
    }
  });
})();
</script>"#;
