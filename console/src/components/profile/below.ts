// The components of the 360 page's lower half (the event timeline, the
// merge journal, cleaning issues) and its one tooltip: the table, selects,
// the input, the undo confirmation and the tooltip are most of Element
// Plus's weight (about 140 KB of script, with popper), and the first
// screen shows none of them. Profile.vue asks for this module after the
// first screen's frame, so their code is fetched and compiled after the
// first screen is painted instead of before.
export { ElTable, ElTableColumn, ElSelect, ElOption, ElInput, ElButton, ElTooltip } from 'element-plus/es'
import 'element-plus/es/components/table/style/css'
import 'element-plus/es/components/table-column/style/css'
import 'element-plus/es/components/select/style/css'
import 'element-plus/es/components/option/style/css'
import 'element-plus/es/components/input/style/css'
import 'element-plus/es/components/button/style/css'
import 'element-plus/es/components/tooltip/style/css'
