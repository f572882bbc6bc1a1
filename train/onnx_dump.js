// Dump the graph (nodes) and float32 initializers of ONNX files for train/from_onnx.py where Python has no onnx
// package: writes OUTDIR/NAME.graph.json + OUTDIR/NAME.bin. Needs the npm package onnx-proto (a project dependency).
// Usage: node train/onnx_dump.js OUTDIR models/default/onnx/*.onnx
//        python3 train/from_onnx.py --model models/default --dump-dir OUTDIR --map-only
const fs=require('fs');const {onnx}=require('onnx-proto');
const outDir=process.argv[2];fs.mkdirSync(outDir,{recursive:true});
for (const f of process.argv.slice(3)){
 const m=onnx.ModelProto.decode(fs.readFileSync(f));
 const base=require('path').join(outDir,require('path').basename(f,'.onnx'));
 const nodes=m.graph.node.map(n=>({op:n.opType,inputs:n.input,outputs:n.output}));
 let off=0;const bufs=[];const inits=[];
 for(const t of m.graph.initializer){
   if(t.dataType!==1) {inits.push({name:t.name,dims:t.dims.map(Number),dtype:t.dataType,skip:true});continue;}
   const b=Buffer.from(t.rawData);bufs.push(b);
   inits.push({name:t.name,dims:t.dims.map(Number),offset:off,bytes:b.length});off+=b.length;
 }
 fs.writeFileSync(base+'.bin',Buffer.concat(bufs));
 fs.writeFileSync(base+'.graph.json',JSON.stringify({nodes,inits}));
 const ops={};for(const n of nodes)ops[n.op]=(ops[n.op]||0)+1;
 console.log(f,JSON.stringify(ops));
}
