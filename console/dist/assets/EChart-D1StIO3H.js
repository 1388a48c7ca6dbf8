import{_ as o}from"./EChart.vue_vue_type_script_setup_true_lang-CoqXu7CA.js";import"./charts-COA7fP6n.js";import"./vue-Djtn3VXW.js";export{o as default};
