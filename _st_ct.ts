import "./cli/trace.ts";
