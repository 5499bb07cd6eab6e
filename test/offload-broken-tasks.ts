/** A task module that cannot be loaded (its top level throws), for the offload tests. */
throw new Error('this task module is broken');
