// Small progressive enhancements; every page works without JavaScript.
// The Content-Security-Policy allows scripts from this site only: no inline <script>, no
// onclick="" and no javascript: links. Templates mark elements with data attributes and
// the behaviour is wired up here.
document.addEventListener("DOMContentLoaded", () => {
  // The navigation toggle on narrow screens.
  const toggle = document.querySelector(".nav-toggle");
  const nav = document.getElementById("sidenav");
  if (toggle && nav) {
    toggle.addEventListener("click", () => {
      const open = nav.classList.toggle("open");
      toggle.setAttribute("aria-expanded", String(open));
    });
  }
  // Close an open menu with Escape or a click elsewhere, and give focus back to it.
  const menus = document.querySelectorAll("details.menu");
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    menus.forEach((menu) => {
      if (menu.open) {
        menu.open = false;
        menu.querySelector("summary").focus();
      }
    });
  });
  document.addEventListener("click", (event) => {
    menus.forEach((menu) => {
      if (menu.open && !menu.contains(event.target)) menu.open = false;
    });
  });

  // A read-only field whose whole value is meant to be copied (a new API key):
  // <input data-select-on-focus> selects everything when it takes focus.
  document.querySelectorAll("[data-select-on-focus]").forEach((input) => {
    input.addEventListener("focus", () => input.select());
  });
  // A copy button: <button data-copy-from="input id" data-copy-status="status id" hidden>.
  // It shows only where the clipboard API is there (it needs HTTPS, or localhost);
  // elsewhere the value is selected and copied by hand.
  document.querySelectorAll("button[data-copy-from]").forEach((button) => {
    const input = document.getElementById(button.dataset.copyFrom);
    const status = document.getElementById(button.dataset.copyStatus);
    if (!input || !navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(input.value);
        if (status) status.textContent = "Copied to the clipboard.";
      } catch {
        input.focus();
        if (status) status.textContent = "Couldn't copy. The key is selected: copy it with Ctrl+C (⌘C on a Mac).";
      }
    });
  });

  // By User: a box in the selection column's header ticks every row of the page
  // (<input data-select-all="member" hidden>, shown only here: without JavaScript the
  // "all matching the filter" box does the same job on the server).
  document.querySelectorAll("input[data-select-all]").forEach((all) => {
    const form = all.closest("form");
    if (!form) return;
    const boxes = () => Array.from(form.querySelectorAll(`input[type=checkbox][name="${all.dataset.selectAll}"]`));
    const sync = () => {
      const ticked = boxes().filter((box) => box.checked).length;
      all.checked = ticked > 0 && ticked === boxes().length;
      all.indeterminate = ticked > 0 && ticked < boxes().length;
    };
    all.hidden = false;
    all.addEventListener("change", () => {
      boxes().forEach((box) => { box.checked = all.checked; });
    });
    boxes().forEach((box) => box.addEventListener("change", sync));
    sync();
  });

  // The Flex picker: ticking a product chooses "only the products ticked"; choosing
  // "all products" dims the boxes (they are ignored then). The server decides either way.
  document.querySelectorAll("[data-flex-products]").forEach((picker) => {
    const form = picker.closest("form");
    const radios = form ? Array.from(form.querySelectorAll('input[type=radio][name="scope"]')) : [];
    const list = radios.find((radio) => radio.value === "list");
    if (!list) return;
    const show = () => picker.classList.toggle("is-muted", !list.checked);
    radios.forEach((radio) => radio.addEventListener("change", show));
    picker.querySelectorAll('input[type=checkbox][name="products"]').forEach((box) => {
      box.addEventListener("change", () => {
        if (box.checked && !list.checked) {
          list.checked = true;
          show();
        }
      });
    });
    show();
  });
});
