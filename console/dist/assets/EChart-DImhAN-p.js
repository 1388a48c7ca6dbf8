import{_ as o}from"./EChart.vue_vue_type_script_setup_true_lang-BPKTHyRc.js";import"./charts-BKirnop0.js";import"./vue-Dp6_ss7x.js";export{o as default};
