// Copy buttons for the embed snippets: the only script on the pages.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) return;
  var field = document.getElementById(button.getAttribute("data-copy"));
  field.select();
  if (navigator.clipboard) navigator.clipboard.writeText(field.value).catch(function () {});
  button.textContent = "Copied";
});
