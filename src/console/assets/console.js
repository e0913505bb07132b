// The console's only script: load a chosen file into the playground's
// editor (the page works without it: paste instead).
document.addEventListener("DOMContentLoaded", function () {
  var file = document.getElementById("upload");
  var editor = document.getElementById("dataset");
  var name = document.getElementById("name");
  if (!file || !editor) { return; }
  file.addEventListener("change", function () {
    var chosen = file.files && file.files[0];
    if (!chosen) { return; }
    var reader = new FileReader();
    reader.onload = function () {
      editor.value = String(reader.result);
      if (name) { name.value = chosen.name; }
    };
    reader.readAsText(chosen);
  });
});
