// Sets the theme before the first paint (a classic script in <head>, so a
// dark page never flashes light): the saved choice, else the system's.
(function () {
  var saved = null;
  try { saved = localStorage.getItem('hubbub.theme'); } catch (e) { /* storage off */ }
  var dark = saved ? saved === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches;
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
})();
