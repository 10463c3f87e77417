// The training configuration page: sliders and number boxes mirror each other; touching a preset field
// switches to "customise". The page works without it.
(function () {
  document.documentElement.classList.add("js");
  var form = document.getElementById("configure-form");
  form.addEventListener("input", function (event) {
    var el = event.target;
    if (el.dataset.sliderFor) {
      var box = document.getElementById(el.dataset.sliderFor);
      box.value = el.dataset.scale === "log" ? Number(Math.pow(10, Number(el.value)).toPrecision(2)) : el.value;
    } else if (el.dataset.slider && el.value !== "") {
      var slider = document.getElementById(el.dataset.slider);
      slider.value = slider.dataset.scale === "log" ? Math.log10(Number(el.value)) : el.value;
    }
    if (el.closest("[data-preset-field]")) { form.elements.customise.checked = true; }
  }, true);
})();
