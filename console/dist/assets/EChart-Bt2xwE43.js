import{_ as o}from"./EChart.vue_vue_type_script_setup_true_lang-CRRxIgsh.js";import"./charts-BEBZ3pF0.js";import"./vue-DUMb0BXr.js";export{o as default};
