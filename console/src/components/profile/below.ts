// The components of the 360 page's lower half (the event timeline, the
// merge journal, cleaning issues): the table, selects, the input and the
// undo confirmation are most of Element Plus's weight (about 140 KB of
// script, with popper), and the first screen shows none of them. Profile.vue
// loads this module after it asked for the page's data, so their code is
// fetched and compiled while the first screen renders instead of before.
export { ElTable, ElTableColumn, ElSelect, ElOption, ElInput, ElButton } from 'element-plus/es'
import 'element-plus/es/components/table/style/css'
import 'element-plus/es/components/table-column/style/css'
import 'element-plus/es/components/select/style/css'
import 'element-plus/es/components/option/style/css'
import 'element-plus/es/components/input/style/css'
import 'element-plus/es/components/button/style/css'
