import "node:path";
import "node:buffer";
