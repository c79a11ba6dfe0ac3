import "node:path";
