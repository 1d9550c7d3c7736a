// The grid worker page's UI strings (zh-CN / en, keys gr.*); words from the glossary (网格员, 上报, 待派单…).
import { t } from "/shared/i18n.js";

export const G = {
  "zh-CN": {
    "gr.title": "乡呼 · 网格员", "gr.menu": "菜单", "gr.logout": "退出登录",
    "gr.offline": "网络已断开：上报需联网，表单内容会保留，联网后再提交",
    "gr.new": "上报事项", "gr.category": "类别", "gr.what": "事由", "gr.whatPh": "一句话说明，如：路口占道经营",
    "gr.place": "地点", "gr.placePh": "地址或明显标志物", "gr.locate": "使用我的位置", "gr.locating": "正在定位…",
    "gr.located": "已定位：{lat}, {lon}", "gr.noLocation": "无法获取位置，请填写地址",
    "gr.description": "情况描述", "gr.send": "上报", "gr.sending": "正在上报…", "gr.sent": "已上报 {number}，等待指挥中心派单",
    "gr.required": "请填写{what}", "gr.failed": "上报失败：{reason}（内容已保留，可再次提交）",
    "gr.mine": "我的上报", "gr.refresh": "刷新", "gr.none": "还没有上报过事项",
    "gr.notGrid": "此页面供网格员使用", "gr.loadFailed": "无法加载，请检查网络",
  },
  en: {
    "gr.title": "Xianghu · Grid worker", "gr.menu": "Menu", "gr.logout": "Log out",
    "gr.offline": "Offline: reporting needs the network; the form is kept, send it once back online",
    "gr.new": "Report a matter", "gr.category": "Category", "gr.what": "What", "gr.whatPh": "One line, e.g. stalls blocking the crossing",
    "gr.place": "Place", "gr.placePh": "Address or landmark", "gr.locate": "Use my location", "gr.locating": "Locating…",
    "gr.located": "Located: {lat}, {lon}", "gr.noLocation": "No location: type the address",
    "gr.description": "Description", "gr.send": "Report", "gr.sending": "Reporting…",
    "gr.sent": "Reported {number}; the command centre will dispatch it",
    "gr.required": "{what} is required", "gr.failed": "Not reported: {reason} (the form is kept; send again)",
    "gr.mine": "My reports", "gr.refresh": "Refresh", "gr.none": "No reports yet",
    "gr.notGrid": "This page is for grid workers", "gr.loadFailed": "Cannot load; check the network",
  },
};
export const gt = (key, vars = {}) => t(key, vars, G);
