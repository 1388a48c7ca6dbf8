import{_ as o}from"./EChart.vue_vue_type_script_setup_true_lang-BFiulYqA.js";import"./charts-BCCTsXZm.js";import"./vue-B9mXX-bf.js";export{o as default};
