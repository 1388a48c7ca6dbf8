import{_ as o}from"./EChart.vue_vue_type_script_setup_true_lang-NyDJ_9eS.js";import"./charts-DWcfM6L5.js";import"./vue-CZMg4j5R.js";export{o as default};
